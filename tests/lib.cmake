# lib/ unit tests: pure modules, table-driven.
sluice_unit_test(test_cidr unit/test_cidr.c)
sluice_unit_test(test_config unit/test_config.c)
sluice_unit_test(test_policy_check unit/test_policy_check.c)
sluice_unit_test(test_passwd unit/test_passwd.c)
sluice_unit_test(test_node_policy unit/test_node_policy.c
	${PROJECT_SOURCE_DIR}/node/policy.c)
sluice_unit_test(test_authwatch unit/test_authwatch.c
	${PROJECT_SOURCE_DIR}/node/authwatch.c)
sluice_unit_test(test_rpc_pick unit/test_rpc_pick.c)
sluice_unit_test(test_route_match unit/test_route_match.c)
sluice_unit_test(test_quota unit/test_quota.c
	${PROJECT_SOURCE_DIR}/node/quota.c)
