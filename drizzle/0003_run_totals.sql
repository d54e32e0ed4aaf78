DROP INDEX `runs_created_at_idx`;--> statement-breakpoint
DROP INDEX `runs_status_created_at_idx`;--> statement-breakpoint
ALTER TABLE `runs` ADD `energy_joules` real;--> statement-breakpoint
ALTER TABLE `runs` ADD `energy_sources` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `trained_samples` integer;--> statement-breakpoint
-- Backfill (hand-added after drizzle-kit generate): the totals of every existing run, from its rows, with the
-- statement src/store/totals.ts refreshes one run with (BACKFILL_RUN_TOTALS_SQL); before the index, so it is built once.
UPDATE runs SET energy_joules = (SELECT sum(j) FROM (SELECT sum(joules) AS j FROM energy_samples WHERE run_id = runs.id GROUP BY source)), energy_sources = (SELECT group_concat(source, '+' ORDER BY CASE source WHEN 'nvml' THEN 0 WHEN 'rapl' THEN 1 ELSE 2 END) FROM (SELECT DISTINCT source FROM energy_samples WHERE run_id = runs.id)), trained_samples = (SELECT sum(round(samples_per_s * epoch_time_s)) FROM epoch_metrics WHERE run_id = runs.id);--> statement-breakpoint
CREATE INDEX `runs_status_compare_idx` ON `runs` (`status`,`created_at`,`id`,`precision`,`model`,`dataset`,`name`,`final_test_acc`,`best_test_acc`,`samples_per_s`,`wall_time_s`,`model_size_bytes`,`packed_size_bytes`,`energy_joules`,`energy_sources`,`trained_samples`);
