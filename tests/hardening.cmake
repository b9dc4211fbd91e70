# Hardening and proof (issue 7): the control plane's transport security,
# secrets kept out of every output, file modes, fault injection.  See
# docs/security.md.
sluice_unit_test(test_rpc_url hardening/test_rpc_url.c)
sluice_scenario_test(hardening_mtls hardening/test_mtls.py 240)
sluice_scenario_test(hardening_secrets hardening/test_secrets.py 240)
# Fault injection under load: the controller killed, PostgreSQL stopped
# for SLUICE_FAULT_PG_SECONDS (issue 7 asks for 30 s; 10 keeps the suite
# short, the code path is the same), the spool's filesystem full.
set(SLUICE_FAULT_PG_SECONDS 10 CACHE STRING
	"PostgreSQL outage in hardening_fault_pg, seconds")
foreach(_f controller pg node)
	set(_args ${_f})
	if(_f STREQUAL pg)
		list(APPEND _args ${SLUICE_FAULT_PG_SECONDS})
	endif()
	add_test(NAME hardening_fault_${_f} COMMAND ${PYTHON3}
		${CMAKE_CURRENT_SOURCE_DIR}/hardening/test_fault.py ${_args})
	set_tests_properties(hardening_fault_${_f} PROPERTIES
		LABELS scenario TIMEOUT 300
		ENVIRONMENT "SLUICE_BUILD=${PROJECT_BINARY_DIR};PYTHONPATH=${CMAKE_CURRENT_SOURCE_DIR}/harness;PYTHONDONTWRITEBYTECODE=1")
endforeach()
sluice_scenario_test(hardening_disk_full hardening/test_disk_full.py 240)
# Issue 11: the event journal keeps its space on a full spool filesystem
# (a loop-mounted ext4) and answers 452 before it cannot journal.
sluice_scenario_test(hardening_journal_full hardening/test_journal_full.py 180)
sluice_scenario_test(hardening_privileges hardening/test_privileges.py 120)
sluice_scenario_test(hardening_slow_upstream hardening/test_slow_upstream.py 300)
# /metrics (node and controller): request size ceilings and a timeout.
sluice_scenario_test(hardening_metrics_http hardening/test_metrics_http.py 120)
# ctest -L hardening runs all of the above.
set_property(TEST test_rpc_url hardening_mtls hardening_secrets
	hardening_fault_controller hardening_fault_pg hardening_fault_node
	hardening_disk_full hardening_journal_full hardening_privileges
	hardening_slow_upstream hardening_metrics_http
	APPEND PROPERTY LABELS hardening)
