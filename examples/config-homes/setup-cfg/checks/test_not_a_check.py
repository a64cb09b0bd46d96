def test_collected_only_when_the_project_config_is_ignored():
    raise AssertionError("pytest's default python_files were used: the project's config did not apply")
