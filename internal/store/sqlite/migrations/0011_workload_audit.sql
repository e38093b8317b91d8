-- The audit of running workloads (package workloadaudit): a lease that
-- lets one process at a time run it, and its last result, which every
-- replica serves. Each table holds at most one row (id 1).
CREATE TABLE workload_audit_lease (
	id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	owner       TEXT    NOT NULL,
	lease_until INTEGER NOT NULL
) STRICT;

-- result is the store.WorkloadAudit as JSON.
CREATE TABLE workload_audit (
	id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	finished_at INTEGER NOT NULL,
	result      TEXT    NOT NULL
) STRICT;
