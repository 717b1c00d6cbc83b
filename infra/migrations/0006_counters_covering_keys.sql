-- The day and month grains answer rankings, scores and scorecards over hundreds of communes:
-- one read of (code, metric) x a bucket range, summed over sectors. With the key in the
-- order (code, metric, bucket, sector) and the value in the index, that read is one range
-- per (code, metric) of an index-only scan (548 communes x 12 counters x a quarter: 105 ms
-- -> 42 ms on the benchmark's data, docs/benchmarks.md). The upsert's conflict target
-- (unit_code, metric, sector, bucket) names the same columns, so it still infers this key.
ALTER TABLE counters_daily
    DROP CONSTRAINT counters_daily_pkey,
    ADD CONSTRAINT counters_daily_pkey PRIMARY KEY (unit_code, metric, bucket, sector) INCLUDE (value);
ALTER TABLE counters_monthly
    DROP CONSTRAINT counters_monthly_pkey,
    ADD CONSTRAINT counters_monthly_pkey PRIMARY KEY (unit_code, metric, bucket, sector) INCLUDE (value);
