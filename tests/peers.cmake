# Real peers nobody here wrote (tests/peers/, docs/testing.md): Debian's
# swaks and msmtp submitting with STARTTLS + AUTH, Postfix (SASL through
# Dovecot) and Exim as the smart host a node authenticates to.  Each runs
# its peer privately on loopback ports and exits 77 (CTest: skipped, the
# reason printed) only when the peer is not installed; scripts/deps.sh
# installs them (Exim unpacked, see test_exim.py).
foreach(_t swaks msmtp postfix exim)
	sluice_scenario_test(peer_${_t} peers/test_${_t}.py 180)
	set_tests_properties(peer_${_t} PROPERTIES SKIP_RETURN_CODE 77
		LABELS "scenario;peers")
endforeach()
