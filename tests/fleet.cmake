# Fleet operations (issue 5): status, metrics, alerts, queue commands,
# drain, two controllers.  Real PostgreSQL, controllers, nodes, upstreams.
sluice_scenario_test(fleet_status fleet/test_status.py 180)
