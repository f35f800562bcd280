-- A dataset without rows is not uploaded as a header-only file: its run is logged as 'skipped' with the reason.
alter table opendata.publish_log drop constraint publish_log_status_check;
alter table opendata.publish_log add constraint publish_log_status_check
    check (status in ('published', 'unchanged', 'skipped', 'failed', 'refused', 'dry-run'));
