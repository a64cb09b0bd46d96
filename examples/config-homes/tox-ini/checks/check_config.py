def test_the_project_config_applied(pytestconfig):
    # Only the project's own config names check_*.py as test files.
    assert pytestconfig.getini("python_files") == ["check_*.py"]
