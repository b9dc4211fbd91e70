# Delivery engine tests (issue 4): unit tests of the pure modules and
# scenario tests against tests/upstream/upstream.py.
set(_n ${PROJECT_SOURCE_DIR}/node)
sluice_unit_test(test_scheduler unit/test_scheduler.c LIBS sluice_delivery)
sluice_unit_test(test_due_queue unit/test_due_queue.c LIBS sluice_delivery)
sluice_unit_test(test_router unit/test_router.c LIBS sluice_delivery)
sluice_unit_test(test_mime8 unit/test_mime8.c LIBS sluice_delivery)
sluice_unit_test(test_reply_scope unit/test_reply_scope.c LIBS sluice_delivery)
sluice_unit_test(test_smtp_reply unit/test_smtp_reply.c LIBS sluice_node_core)

# dlvpolicy: the policy cache (hops, routes) a node starts from without a
# controller.
add_executable(sluice-dlvpolicy delivery/dlvpolicy.c)
target_link_libraries(sluice-dlvpolicy PRIVATE sluice_common)

foreach(_t basic failover retry dsn reuse weights mx restart provider trace
		immediate received 8bitmime sink8 jitter)
	sluice_scenario_test(delivery_${_t} delivery/test_${_t}.py 300)
endforeach()
# Needs Postfix's smtp-sink (package postfix, installed by deps.sh):
# without it the test exits 77 and CTest shows it as skipped.
set_tests_properties(delivery_sink8 PROPERTIES SKIP_RETURN_CODE 77)
# A hop with credentials never sends AUTH without TLS (issue 11).
sluice_scenario_test(delivery_auth_tls delivery/test_auth_tls.py 120)
# Waits out the policy's minimum queue lifetime (60 s).
sluice_scenario_test(delivery_expire delivery/test_expire.py 240)
# Issue 16: the provider's message id from the 250 reply.
sluice_unit_test(test_provider_id unit/test_provider_id.c LIBS sluice_delivery)
# Issue 15: XOAUTH2 hops against a loopback token endpoint (tokenep.py).
sluice_scenario_test(delivery_xoauth2 delivery/test_xoauth2.py 180)
sluice_unit_test(test_oauth_jwt unit/test_oauth_jwt.c)
# Issue 16: the provider metadata header with sluice's queue id.
sluice_unit_test(test_provider_tag unit/test_provider_tag.c LIBS sluice_delivery)
