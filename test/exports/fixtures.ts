/**
 * A small hand-made PMT 2.0 dataset (2.0.8.51's tables) where every rule of
 * PMT's filter has a case:
 *
 *   taxonomy 1 Sector: 11 Education (11110), 12 Health (12220)
 *   taxonomy 2 Country: 21 Tanzania (TZ), 22 Nepal (NP)
 *   taxonomy 3 Data Group: 31 World Bank
 *   taxonomy 4 Organisation Role (PMT's words): 41 Funding, 42 Accountable, 44 Implementing
 *   taxonomy 5 Activity Status: 52 Implementation (2)
 *   project 1 (data group World Bank; org 3 Accountable): activities 1, 2, 5 (inactive), 7
 *   project 2 (org 2 Funding; a project-level budget): activities 3, 4, 6
 *   activity 1: Education, location in Tanzania, 2010-01-01..2010-12-31, org 1 Implementing
 *   activity 2: Health, location in Nepal, 2011-01-01..2011-06-30
 *   activity 3: Education, a location without country, 2012-01-01..2012-12-31
 *   activity 4: no sector, location in Tanzania, 2013-01-01..2013-12-31
 *   activity 6: Education, no location (PMT never exports it)
 *   activity 7: Health, locations in Nepal and in Tanzania (this one classified Education), 2014
 */
import type pg from "pg";

export const SAMPLE_DATA = `
insert into public.version (version, iteration, changeset) values (2.0, 8, 51);
insert into public.config (version) values (2.0);
insert into public.taxonomy (taxonomy_id, name) values (1, 'Sector'), (2, 'Country'), (3, 'Data Group'), (4, 'Organisation Role'), (5, 'Activity Status');
insert into public.classification (classification_id, taxonomy_id, code, name, iati_code, iati_name) values
  (11, 1, '11110', 'Education policy and administrative management', '11110', 'Education policy and administrative management'),
  (12, 1, '12220', 'Basic health care', '12220', 'Basic health care'),
  (21, 2, 'TZ', 'Tanzania', 'TZ', 'Tanzania'), (22, 2, 'NP', 'Nepal', 'NP', 'Nepal'), (31, 3, null, 'World Bank', null, null),
  (41, 4, 'Funding', 'Funding', 'Funding', 'Funding'), (42, 4, 'Accountable', 'Accountable', 'Accountable', 'Accountable'),
  (44, 4, 'Implementing', 'Implementing', 'Implementing', 'Implementing'), (52, 5, '2', 'Implementation', '2', 'Implementation');
insert into public.organization (organization_id, name, url) values
  (1, 'Org One', 'https://one.example.org'), (2, 'Org "Two", Ltd', null), (3, 'Org <Three> & Co', 'https://three.example.org');
insert into public.project (project_id, title, description, start_date, end_date, url) values
  (1, 'Project One', 'First, "quoted" project', '2010-01-01', '2011-12-31', 'https://p1.example.org'),
  (2, 'Project Two', E'Line one\\nline two', '2012-01-01', '2013-12-31', null);
insert into public.activity (activity_id, project_id, iati_identifier, title, description, start_date, end_date, tags, active) values
  (1, 1, 'XI-PMT-A1', 'Schools <rural> & "urban"', 'Education, with commas', '2010-01-01', '2010-12-31', 'school', true),
  (2, 1, 'XI-PMT-A2', 'Clinics', 'Health', '2011-01-01', '2011-06-30', null, true),
  (3, 2, 'XI-PMT-A3', 'Teachers', 'Education again', '2012-01-01', '2012-12-31', null, true),
  (4, 2, 'XI-PMT-A4', 'Roads', 'No sector', '2013-01-01', '2013-12-31', null, true),
  (5, 1, 'XI-PMT-A5', 'Inactive', 'Never exported', '2010-01-01', '2010-12-31', null, false),
  (6, 2, 'XI-PMT-A6', 'Nowhere', 'No location', '2012-01-01', '2012-12-31', null, true),
  (7, 1, null, 'Two countries', 'Health here, education there', '2014-01-01', '2014-12-31', null, true);
insert into public.location (location_id, project_id, activity_id, title, lat_dd, long_dd) values
  (1, 1, 1, 'Dodoma', -6.173, 35.741), (2, 1, 2, 'Pokhara', 28.209, 83.985), (3, 2, 3, 'Somewhere', null, null),
  (4, 2, 4, 'Arusha', -3.386, 36.683), (7, 1, 7, 'Kathmandu', 27.717, 85.324), (8, 1, 7, 'Mwanza', -2.516, 32.9);
insert into public.location_taxonomy (location_id, classification_id) values (1, 21), (2, 22), (4, 21), (7, 22), (8, 21), (8, 11);
insert into public.activity_taxonomy (activity_id, classification_id) values (1, 11), (2, 12), (3, 11), (5, 11), (6, 11), (1, 52), (7, 12);
insert into public.project_taxonomy (project_id, classification_id) values (1, 31);
insert into public.participation (participation_id, project_id, activity_id, organization_id) values
  (1, 1, 1, 1), (2, 2, null, 2), (3, 1, null, 3);
insert into public.participation_taxonomy (participation_id, classification_id) values (1, 44), (2, 41), (3, 42);
insert into public.financial (financial_id, project_id, activity_id, amount, start_date, end_date) values
  (1, 1, 1, 1500.50, '2010-01-01', '2010-06-30'), (2, 1, 1, 2500, '2010-07-01', '2010-12-31'), (3, 2, null, 9000, null, null);
`;

export async function loadSampleData(pool: pg.Pool): Promise<void> {
  await pool.query(SAMPLE_DATA);
}

/** Activities and projects an unfiltered export holds (PMT's rules: some of the demo's activities are left out on purpose). */
export const EXPORTED_SQL = `select count(*)::int as activities, count(distinct project_id)::int as projects
                             from pmt_jobs.filter_activities(pmt_jobs.check_filters('{}'))`;

export async function exported(pool: pg.Pool): Promise<{ activities: number; projects: number }> {
  return (await pool.query(EXPORTED_SQL)).rows[0];
}
