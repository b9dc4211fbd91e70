-- 013_quota_usage.sql - per-credential quotas (issue 15): every node's
-- count for a user in one window of one dimension (hour_msgs, hour_rcpts,
-- day_msgs, day_rcpts), the absolute allowance the controller last handed
-- it, and its refusals.  The controller sums the rows of a window to give
-- the next allowance (controller/allowance.c); rows of ended windows are
-- of no use and removed by the health tick.
CREATE TABLE quota_usage (
	node_id bigint NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
	user_name text NOT NULL,
	dim text NOT NULL,
	window_start bigint NOT NULL,	-- unix s
	used bigint NOT NULL DEFAULT 0,
	granted bigint NOT NULL DEFAULT 0,
	refused bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (user_name, dim, window_start, node_id)
);
