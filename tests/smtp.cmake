# SMTP ingress tests (issue 3): pure parsers as cmocka units, the rest as
# Python transcripts against a real sluice-node over loopback.
set(_n ${PROJECT_SOURCE_DIR}/node)
sluice_unit_test(test_smtp_parse unit/test_smtp_parse.c LIBS sluice_smtp)
sluice_unit_test(test_received unit/test_received.c LIBS sluice_smtp)
sluice_unit_test(test_proxy unit/test_proxy.c LIBS sluice_smtp)
sluice_unit_test(test_ratelimit unit/test_ratelimit.c LIBS sluice_smtp)
sluice_unit_test(test_smtp_check unit/test_smtp_check.c LIBS sluice_smtp)

# mkpolicy: writes the policy cache the node starts from without a
# controller.
add_executable(sluice-mkpolicy smtp/mkpolicy.c)
target_link_libraries(sluice-mkpolicy PRIVATE sluice_common)

foreach(_t basic hostile tls_auth limits proxy crash)
	sluice_scenario_test(smtp_${_t} smtp/test_${_t}.py 300)
	set_property(TEST smtp_${_t} APPEND PROPERTY DEPENDS sluice-mkpolicy)
endforeach()

# spool_list: queue ids of a spool through the spool API (crash test).
add_executable(sluice-spool-list smtp/spool_list.c)
target_link_libraries(sluice-spool-list PRIVATE sluice_spool)

# libFuzzer targets for the parsers of peer input (clang, -DSLUICE_FUZZ=ON):
#   build/tests/fuzz_smtp_parse -max_total_time=60
if(SLUICE_FUZZ)
	foreach(_f smtp_parse proxy)
		add_executable(fuzz_${_f} fuzz/fuzz_${_f}.c ${_n}/smtp/${_f}.c)
		target_include_directories(fuzz_${_f} PRIVATE ${_n} ${_n}/smtp)
		target_compile_options(fuzz_${_f} PRIVATE
			-fsanitize=fuzzer,address,undefined)
		target_link_options(fuzz_${_f} PRIVATE
			-fsanitize=fuzzer,address,undefined)
	endforeach()
endif()
sluice_unit_test(test_rewrite unit/test_rewrite.c LIBS sluice_smtp)
