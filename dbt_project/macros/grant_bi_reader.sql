{#-
  on-run-end: the BI tools' role. bi_reader may read every table and view of schema marts
  (now and, through default privileges, every one dbt creates later) and nothing else.
  Roles are cluster-wide and several databases may build at once, hence the guards.
  The role is created NOLOGIN; exops.transform gives it LOGIN and the password from
  EXOPS_BI_READER_PASSWORD when that is set (so the password never reaches dbt's logs).
-#}
{% macro grant_bi_reader(role='bi_reader') %}
    do $$
    begin
        if not exists (select from pg_catalog.pg_roles where rolname = '{{ role }}') then
            create role {{ role }} nologin;
        end if;
    exception when duplicate_object or unique_violation then
        null;
    end
    $$;
    create schema if not exists marts;
    grant usage on schema marts to {{ role }};
    grant select on all tables in schema marts to {{ role }};
    alter default privileges in schema marts grant select on tables to {{ role }};
{% endmacro %}
