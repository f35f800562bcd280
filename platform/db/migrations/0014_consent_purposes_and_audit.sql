-- Exits select their contributors through one function, by the purpose they declare
-- (cityos.platform.exits); the audit log names the entry point, the subject and the reason.
create function core.consenting_subjects(p_category text, p_purpose text) returns setof text
language sql stable as $$
    select subject_id from core.consents_current where category = p_category and purpose = p_purpose
$$;

alter table core.audit_log add column entry_point text not null default '';
alter table core.audit_log add column subject text not null default '';
alter table core.audit_log add column reason text not null default '';
create index audit_log_subject_idx on core.audit_log (subject, at desc) where subject <> '';
