# DKIM signing (issue 14): the pure core as a cmocka unit; signatures
# checked by an independent verifier (Debian's python3-dkim) offline.
set(_n ${PROJECT_SOURCE_DIR}/node)
sluice_unit_test(test_dkim unit/test_dkim.c LIBS sluice_node_core)

add_executable(sluice-dkim-sign dkim/dkim_sign.c ${_n}/dkim.c)
target_include_directories(sluice-dkim-sign PRIVATE ${_n})
target_link_libraries(sluice-dkim-sign PRIVATE sluice_common)

sluice_scenario_test(dkim_verify dkim/test_verify.py 120)
sluice_scenario_test(dkim_node dkim/test_node.py 180)
sluice_scenario_test(dkim_fleet dkim/test_fleet.py 240)
# The controller checks the published keys itself and alerts (dnsmasq).
sluice_scenario_test(dkim_dns_alert dkim/test_dns_alert.py 120)
