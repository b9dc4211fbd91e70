# Fleet operations (issue 5): status, metrics, alerts, queue commands,
# drain, two controllers.  Real PostgreSQL, controllers, nodes, upstreams.
sluice_scenario_test(fleet_status fleet/test_status.py 180)
sluice_scenario_test(fleet_alerts fleet/test_alerts.py 180)
sluice_unit_test(test_health fleet/test_health.c
	${PROJECT_SOURCE_DIR}/controller/health.c)
sluice_scenario_test(fleet_queue fleet/test_queue.py 180)
sluice_scenario_test(fleet_routing fleet/test_routing.py 180)
sluice_scenario_test(fleet_drain fleet/test_drain.py 180)
sluice_scenario_test(fleet_two_controllers fleet/test_two_controllers.py 180)
sluice_scenario_test(fleet_retention fleet/test_retention.py 180)
sluice_scenario_test(fleet_budget fleet/test_budget.py 240)
sluice_unit_test(test_budget fleet/test_budget_unit.c
	${PROJECT_SOURCE_DIR}/controller/budget.c)
sluice_scenario_test(fleet_handoff fleet/test_handoff.py 180)
# drain --handoff over the shadow channel: the user's, the listener's
# routes and the DKIM signature hold at the peer; trace follows the id.
sluice_scenario_test(fleet_handoff_envelope fleet/test_handoff_envelope.py 180)
# ... and a late ack (peer stopped, then continued): sent again, taken once.
sluice_scenario_test(fleet_handoff_once fleet/test_handoff_once.py 180)
sluice_scenario_test(fleet_auth_burst fleet/test_auth_burst.py 120)
sluice_scenario_test(fleet_failback fleet/test_failback.py 180)
sluice_scenario_test(fleet_hung_controller fleet/test_hung_controller.py 120)
# Issues 11 and 20: no node_silent after a controller restart or a
# PostgreSQL outage; a node back in contact is not "cached".
sluice_scenario_test(fleet_false_alerts fleet/test_false_alerts.py 180)
# Issue 11: a Message-ID with octets that are not UTF-8 goes through a real
# fleet; its events and the later ones are stored; trace shows them.
sluice_scenario_test(fleet_record_bytes fleet/test_record_bytes.py 120)
sluice_scenario_test(fleet_policy_identity fleet/test_policy_identity.py 120)
sluice_scenario_test(fleet_reply_scope fleet/test_reply_scope.py 180)
# Issue 10: a throttle met by one node pauses the hop on every node.
sluice_scenario_test(fleet_pause fleet/test_fleet_pause.py 120)
sluice_scenario_test(fleet_journal_retention fleet/test_journal_retention.py 120)
sluice_scenario_test(fleet_event_stream fleet/test_event_stream.py 180)
sluice_scenario_test(fleet_pg_failover fleet/test_pg_failover.py 180)
# Issue 13: shadow redundancy - a node lost under load, takeover, release.
sluice_scenario_test(fleet_shadow fleet/test_shadow.py 180)
sluice_scenario_test(fleet_shadow_degraded fleet/test_shadow_degraded.py 120)
sluice_scenario_test(fleet_shadow_tls fleet/test_shadow_tls.py 120)
sluice_scenario_test(fleet_shadow_envelope fleet/test_shadow_envelope.py 120)
sluice_unit_test(test_allowance fleet/test_allowance_unit.c
	${PROJECT_SOURCE_DIR}/controller/allowance.c)
sluice_scenario_test(fleet_quota fleet/test_quota.py 120)
# Issue 16: provider webhooks (SendGrid, SES/SNS, Mailgun, Postmark, Brevo)
# signed in the test, posted over HTTPS, joined into trace; refusals; the
# suppression list at RCPT; ingest rate printed.
sluice_scenario_test(fleet_provider_hooks fleet/test_provider_hooks.py 300)
# Issue 15: an XOAUTH2 hop from sluicectl through the controller to a node.
sluice_scenario_test(fleet_xoauth2 fleet/test_xoauth2.py 180)

# node/mailbox.c: closures from other threads run on the loop, in order.
sluice_unit_test(test_mailbox unit/test_mailbox.c LIBS sluice_node_core)

# node/control/: the pure halves of the control plane, table tests.
sluice_unit_test(test_qshape unit/test_qshape.c LIBS sluice_control)
sluice_unit_test(test_handoff unit/test_handoff.c LIBS sluice_control)
# Issue 16: sluice's queue id in the provider's metadata header (per hop,
# on the wire only, DKIM still verifies) and events joined by it.
sluice_scenario_test(fleet_provider_tag fleet/test_provider_tag.py 180)
# Issue 16: provider events that came before their message's record are
# joined by the controller's re-join pass.
sluice_scenario_test(fleet_provider_rejoin fleet/test_provider_rejoin.py 180)
# Issue 16: suppression_mode bounce (accept, DSN naming the suppression,
# never sent to a hop); sluicectl suppress mode; YAML round trip.
sluice_scenario_test(fleet_suppress_bounce fleet/test_suppress_bounce.py 180)
