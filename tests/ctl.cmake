# sluicectl: the policy file format (pure: YAML <-> policy, diff) and the
# whole CLI against a real controller.
set(_ctl ${PROJECT_SOURCE_DIR}/ctl)
sluice_unit_test(test_policy_yaml ctl/test_policy_yaml.c
	${_ctl}/policy_yaml.c ${_ctl}/policy_edit.c ${_ctl}/policy_diff.c
	${_ctl}/hop_preset.c ${_ctl}/hop_oauth.c ${_ctl}/xmalloc.c
	LIBS PkgConfig::YAML)
sluice_scenario_test(ctl_policy ctl/test_ctl_policy.py 300)
# Issue 15: XOAUTH2 hops through sluicectl (hop add, export/apply, check -f).
sluice_scenario_test(ctl_oauth ctl/test_ctl_oauth.py 180)
