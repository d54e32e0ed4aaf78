CREATE TABLE `checkpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` text NOT NULL,
	`epoch` integer NOT NULL,
	`step` integer NOT NULL,
	`path` text NOT NULL,
	`sha256` text NOT NULL,
	`bytes` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `checkpoints_run_step_idx` ON `checkpoints` (`run_id`,`step`);--> statement-breakpoint
CREATE TABLE `epoch_metrics` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` text NOT NULL,
	`epoch` integer NOT NULL,
	`train_loss` real NOT NULL,
	`train_acc` real NOT NULL,
	`test_loss` real,
	`test_acc` real,
	`lr` real NOT NULL,
	`samples_per_s` real NOT NULL,
	`epoch_time_s` real NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `epoch_metrics_run_epoch_idx` ON `epoch_metrics` (`run_id`,`epoch`);--> statement-breakpoint
CREATE TABLE `events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` text,
	`at` text NOT NULL,
	`kind` text NOT NULL,
	`detail` text,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `events_run_at_idx` ON `events` (`run_id`,`at`);--> statement-breakpoint
CREATE INDEX `events_kind_idx` ON `events` (`kind`);--> statement-breakpoint
CREATE TABLE `runs` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`tags` text NOT NULL,
	`config` text NOT NULL,
	`config_hash` text NOT NULL,
	`precision` text NOT NULL,
	`model` text NOT NULL,
	`dataset` text NOT NULL,
	`seed` integer NOT NULL,
	`status` text NOT NULL,
	`code_version` text NOT NULL,
	`backend` text NOT NULL,
	`threads` integer NOT NULL,
	`created_at` text NOT NULL,
	`started_at` text,
	`finished_at` text,
	`final_test_acc` real,
	`best_test_acc` real,
	`model_size_bytes` integer,
	`packed_size_bytes` integer,
	`wall_time_s` real,
	`samples_per_s` real,
	`error` text,
	CONSTRAINT "runs_status_check" CHECK(status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'))
);
--> statement-breakpoint
CREATE INDEX `runs_created_at_idx` ON `runs` (`created_at`);--> statement-breakpoint
CREATE INDEX `runs_status_idx` ON `runs` (`status`);--> statement-breakpoint
CREATE INDEX `runs_config_hash_idx` ON `runs` (`config_hash`);--> statement-breakpoint
CREATE INDEX `runs_name_idx` ON `runs` (`name`);--> statement-breakpoint
CREATE INDEX `runs_compare_idx` ON `runs` (`dataset`,`model`,`precision`,`seed`);