# The web console (issue 18): JSON encoding (unit), the HTTPS API with
# logins, roles, CSRF, lockout and no secrets in any response (real fleet),
# and Debian's chromium driving the pages (skipped without chromium).
sluice_unit_test(test_console_json console/test_console_json.c
	${PROJECT_SOURCE_DIR}/controller/console_json.c)
sluice_scenario_test(console_api console/test_api.py 240)
sluice_scenario_test(console_browser console/test_browser.py 400)
set_tests_properties(console_browser PROPERTIES SKIP_RETURN_CODE 77)
sluice_scenario_test(console_grafana console/test_grafana.py 120)
