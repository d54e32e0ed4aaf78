CREATE TABLE `energy_samples` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` text NOT NULL,
	`worker_id` text,
	`epoch` integer,
	`at` text NOT NULL,
	`watts` real,
	`joules` real NOT NULL,
	`source` text NOT NULL,
	`detail` text,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`worker_id`) REFERENCES `workers`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "energy_samples_source_check" CHECK(source IN ('nvml', 'rapl', 'estimate')),
	CONSTRAINT "energy_samples_joules_check" CHECK(joules >= 0)
);
--> statement-breakpoint
CREATE INDEX `energy_samples_run_epoch_idx` ON `energy_samples` (`run_id`,`epoch`);--> statement-breakpoint
CREATE INDEX `energy_samples_worker_idx` ON `energy_samples` (`worker_id`);--> statement-breakpoint
CREATE TABLE `hardware_snapshots` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`worker_id` text,
	`run_id` text,
	`at` text NOT NULL,
	`cpu_model` text NOT NULL,
	`cpu_cores` integer NOT NULL,
	`cpu_threads` integer NOT NULL,
	`isa_flags` text NOT NULL,
	`memory_bytes` integer NOT NULL,
	`gpu_model` text,
	`gpu_driver` text,
	`gpu_memory_bytes` integer,
	`gpu_count` integer DEFAULT 0 NOT NULL,
	`os` text NOT NULL,
	`node_version` text NOT NULL,
	`package_versions` text NOT NULL,
	FOREIGN KEY (`worker_id`) REFERENCES `workers`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `hardware_snapshots_run_idx` ON `hardware_snapshots` (`run_id`);--> statement-breakpoint
CREATE INDEX `hardware_snapshots_worker_at_idx` ON `hardware_snapshots` (`worker_id`,`at`);--> statement-breakpoint
CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `run_members` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` text NOT NULL,
	`generation` integer NOT NULL,
	`worker_id` text NOT NULL,
	`rank` integer NOT NULL,
	`world_size` integer NOT NULL,
	`joined_at` text NOT NULL,
	`left_at` text,
	`reason` text,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`worker_id`) REFERENCES `workers`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "run_members_rank_check" CHECK(rank >= 0 AND rank < world_size)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `run_members_run_gen_rank_idx` ON `run_members` (`run_id`,`generation`,`rank`);--> statement-breakpoint
CREATE UNIQUE INDEX `run_members_run_gen_worker_idx` ON `run_members` (`run_id`,`generation`,`worker_id`);--> statement-breakpoint
CREATE INDEX `run_members_worker_idx` ON `run_members` (`worker_id`);--> statement-breakpoint
CREATE TABLE `step_metrics` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` text NOT NULL,
	`step` integer NOT NULL,
	`epoch` integer NOT NULL,
	`loss` real NOT NULL,
	`accuracy` real,
	`lr` real NOT NULL,
	`samples_per_s` real,
	`at` text NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `step_metrics_run_step_idx` ON `step_metrics` (`run_id`,`step`);--> statement-breakpoint
CREATE TABLE `workers` (
	`id` text PRIMARY KEY NOT NULL,
	`hostname` text NOT NULL,
	`first_seen` text NOT NULL,
	`last_seen` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `workers_hostname_idx` ON `workers` (`hostname`);--> statement-breakpoint
CREATE INDEX `workers_last_seen_idx` ON `workers` (`last_seen`);