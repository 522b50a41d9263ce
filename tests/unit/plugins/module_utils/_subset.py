"""assert_subset: the table-driven tests state only the fields a case is about."""


def assert_subset(expected, actual, path="result"):
    """Every key of an expected dict must match in actual; lists must match item by item, same length."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected a mapping, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}: missing key {key!r} (has {sorted(actual)})"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(expected) == len(actual), f"{path}: expected {len(expected)} items, got {len(actual)}: {actual!r}"
        for index, (wanted, got) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(wanted, got, f"{path}[{index}]")
    else:
        assert expected == actual, f"{path}: expected {expected!r}, got {actual!r}"
