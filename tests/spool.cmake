# Spool tests: cmocka unit tests against a real directory, the queue
# listing tool, and a SIGKILL crash test with a real process.
sluice_unit_test(test_spool ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_spool.c
	LIBS sluice_spool)
sluice_unit_test(test_spool_enospc
	${CMAKE_CURRENT_SOURCE_DIR}/unit/test_spool_enospc.c
	LIBS sluice_spool)
# Issue 21: a segment unlink and its directory fsync run outside the
# commit batches; fsync wrapped to hold one open.
sluice_unit_test(test_spool_stall
	${CMAKE_CURRENT_SOURCE_DIR}/unit/test_spool_stall.c
	LIBS sluice_spool)
target_link_options(test_spool_stall PRIVATE -Wl,--wrap=fsync)

# build/tests/spool_list DIR: one line per queued message (docs/spool.md).
add_executable(spool_list ${CMAKE_CURRENT_SOURCE_DIR}/spool/spool_list.c)
# build/tests/spool_crash DIR: commits in a loop, prints acknowledged ids.
add_executable(spool_crash ${CMAKE_CURRENT_SOURCE_DIR}/spool/spool_crash.c)
foreach(_t spool_list spool_crash)
	target_link_libraries(${_t} PRIVATE sluice_spool)
endforeach()

sluice_scenario_test(spool_crash spool/test_spool_crash.py 120)

# Benchmarks (not tests): build/tests/data_reader, build/tests/fsync_rate,
# build/tests/spool_ingest,
# build/tests/spool_fill (bench/deferred.sh), build/tests/latency_client.
add_executable(data_reader ${PROJECT_SOURCE_DIR}/bench/data_reader.c)
target_link_libraries(data_reader PRIVATE sluice_smtp)
add_executable(fsync_rate ${PROJECT_SOURCE_DIR}/bench/fsync_rate.c)
target_link_libraries(fsync_rate PRIVATE Threads::Threads)
add_executable(spool_ingest ${PROJECT_SOURCE_DIR}/bench/spool_ingest.c)
target_link_libraries(spool_ingest PRIVATE sluice_spool)
add_executable(spool_fill ${PROJECT_SOURCE_DIR}/bench/spool_fill.c)
target_link_libraries(spool_fill PRIVATE sluice_spool)
# build/tests/latency_client: bench/latency.py's open-loop load.
add_executable(latency_client ${PROJECT_SOURCE_DIR}/bench/latency_client.c)
# Issue 20: acknowledged journal events retained, rewound, compacted.
sluice_unit_test(test_journal ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_journal.c
	LIBS sluice_spool)
# Issue 21: the journal's fdatasyncs (report, ack file, compaction) never hold the lock
# the loop thread appends under; fdatasync wrapped to hold one open.
sluice_unit_test(test_journal_stall
	${CMAKE_CURRENT_SOURCE_DIR}/unit/test_journal_stall.c
	LIBS sluice_spool)
target_link_options(test_journal_stall PRIVATE -Wl,--wrap=fdatasync)

# Issue 13, shadow redundancy: the pure parts (policy verdict, named
# limits, frames, maps, the origin field of a record).
sluice_unit_test(test_shadow ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_shadow.c
	LIBS sluice_node_core)
