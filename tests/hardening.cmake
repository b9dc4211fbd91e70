# Hardening and proof (issue 7): the control plane's transport security,
# secrets kept out of every output, file modes, fault injection.  See
# docs/security.md.
sluice_unit_test(test_rpc_url hardening/test_rpc_url.c)
sluice_scenario_test(hardening_mtls hardening/test_mtls.py 240)
sluice_scenario_test(hardening_secrets hardening/test_secrets.py 240)
