# Control-plane scenarios: real PostgreSQL, controller, nodes, sluicectl.
sluice_scenario_test(scenario_enroll scenario/test_enroll.py 120)
sluice_scenario_test(scenario_propagation scenario/test_propagation.py 180)
sluice_scenario_test(scenario_resilience scenario/test_resilience.py 240)
sluice_scenario_test(scenario_route_explain scenario/test_route_explain.py 120)
