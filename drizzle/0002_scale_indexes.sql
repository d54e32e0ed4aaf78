CREATE INDEX `energy_samples_run_source_idx` ON `energy_samples` (`run_id`,`source`,`joules`);--> statement-breakpoint
CREATE INDEX `epoch_metrics_run_samples_idx` ON `epoch_metrics` (`run_id`,`samples_per_s`,`epoch_time_s`);--> statement-breakpoint
CREATE INDEX `runs_created_at_id_idx` ON `runs` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `runs_status_created_at_idx` ON `runs` (`status`,`created_at`,`id`);