# Fleet operations (issue 5): status, metrics, alerts, queue commands,
# drain, two controllers.  Real PostgreSQL, controllers, nodes, upstreams.
sluice_scenario_test(fleet_status fleet/test_status.py 180)
sluice_scenario_test(fleet_alerts fleet/test_alerts.py 180)
sluice_unit_test(test_health fleet/test_health.c
	${PROJECT_SOURCE_DIR}/controller/health.c)
sluice_scenario_test(fleet_queue fleet/test_queue.py 180)
sluice_scenario_test(fleet_drain fleet/test_drain.py 180)
sluice_scenario_test(fleet_two_controllers fleet/test_two_controllers.py 180)
sluice_scenario_test(fleet_retention fleet/test_retention.py 180)
sluice_scenario_test(fleet_budget fleet/test_budget.py 240)
sluice_unit_test(test_budget fleet/test_budget_unit.c
	${PROJECT_SOURCE_DIR}/controller/budget.c)
sluice_scenario_test(fleet_handoff fleet/test_handoff.py 180)
sluice_scenario_test(fleet_auth_burst fleet/test_auth_burst.py 120)
sluice_scenario_test(fleet_failback fleet/test_failback.py 180)
sluice_scenario_test(fleet_hung_controller fleet/test_hung_controller.py 120)
