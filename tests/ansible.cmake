# Ansible deployment (ansible/, docs/ansible.md):
#   ansible_lint   ansible-playbook --syntax-check on every playbook,
#                  ansible-inventory on the example, ansible-lint (offline)
#   ansible_apply  site.yml applied to localhost in a throwaway prefix, the
#                  installed binaries started from the rendered configs,
#                  enrollment + a message through the node, then a second
#                  apply must report changed=0 (its own budget: 720 s,
#                  BUDGET_S; PostgreSQL stopped on any exit).
# scripts/test.sh runs them (label ansible) beside both passes, at nice 5.
# Both need Debian's ansible and ansible-lint packages; without them they
# exit 77 and CTest reports them skipped with the reason.
sluice_scenario_test(ansible_lint ansible/test_lint.py 180)
sluice_scenario_test(ansible_apply ansible/test_apply.py 780)
set_tests_properties(ansible_lint ansible_apply PROPERTIES
	LABELS "scenario;ansible" SKIP_RETURN_CODE 77)
# Lint must not race the apply for ansible's caches; both are cheap.
set_tests_properties(ansible_apply PROPERTIES DEPENDS ansible_lint)
