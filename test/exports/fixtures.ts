/**
 * A small hand-made PMT dataset where every filter rule has a case:
 *
 *   taxonomy 1 Sector: 11 Education (11110), 12 Health (12220)
 *   taxonomy 2 Country: 21 Tanzania (TZ), 22 Nepal (NP)
 *   taxonomy 3 Data Group: 31 World Bank
 *   taxonomy 4 Organisation Role: 41 Funding (1), 42 Accountable (2), 44 Implementing (4)
 *   project 1 (data group World Bank): activities 1, 2, 5 (inactive)
 *   project 2: activities 3, 4
 *   activity 1: Education, location in Tanzania, 2010-01-01..2010-12-31, implementer org 1
 *   activity 2: Health, location in Nepal, 2011-01-01..2011-06-30
 *   activity 3: Education, no country, 2012-01-01..2012-12-31
 *   activity 4: no sector, location in Tanzania, 2013-01-01..2013-12-31
 *   project 2 has org 2 (Funding) at project level; project 1 has org 3 (Accountable)
 */
import type pg from "pg";

export const SAMPLE_DATA = `
insert into public.config (version, iteration, changeset) values (2.0, 8, 79);
insert into public.taxonomy (taxonomy_id, name) values (1, 'Sector'), (2, 'Country'), (3, 'Data Group'), (4, 'Organisation Role'), (5, 'Activity Status');
insert into public.classification (classification_id, taxonomy_id, code, name) values
  (11, 1, '11110', 'Education policy and administrative management'), (12, 1, '12220', 'Basic health care'),
  (21, 2, 'TZ', 'Tanzania'), (22, 2, 'NP', 'Nepal'), (31, 3, 'WB', 'World Bank'),
  (41, 4, '1', 'Funding'), (42, 4, '2', 'Accountable'), (44, 4, '4', 'Implementing'), (52, 5, '2', 'Implementation');
insert into public.organization (organization_id, name, iati_identifier, url) values
  (1, 'Org One', 'XI-PMT-0001', 'https://one.example.org'), (2, 'Org "Two", Ltd', 'XI-PMT-0002', null),
  (3, 'Org <Three> & Co', 'XI-PMT-0003', 'https://three.example.org');
insert into public.project (project_id, iati_identifier, title, description, start_date, end_date, url) values
  (1, 'XI-PMT-P1', 'Project One', 'First, "quoted" project', '2010-01-01', '2011-12-31', 'https://p1.example.org'),
  (2, 'XI-PMT-P2', 'Project Two', E'Line one\\nline two', '2012-01-01', '2013-12-31', null);
insert into public.activity (activity_id, project_id, iati_identifier, title, description, start_date, end_date, city_village, tags, active) values
  (1, 1, 'XI-PMT-A1', 'Schools <rural> & "urban"', 'Education, with commas', '2010-01-01', '2010-12-31', 'Dodoma', 'school', true),
  (2, 1, 'XI-PMT-A2', 'Clinics', 'Health', '2011-01-01', '2011-06-30', 'Pokhara', null, true),
  (3, 2, 'XI-PMT-A3', 'Teachers', 'Education again', '2012-01-01', '2012-12-31', null, null, true),
  (4, 2, 'XI-PMT-A4', 'Roads', 'No sector', '2013-01-01', '2013-12-31', null, null, true),
  (5, 1, 'XI-PMT-A5', 'Inactive', 'Never exported', '2010-01-01', '2010-12-31', null, null, false);
insert into public.location (location_id, project_id, activity_id, title, lat_dd, long_dd) values
  (1, 1, 1, 'Dodoma', -6.173, 35.741), (2, 1, 2, 'Pokhara', 28.209, 83.985), (4, 2, 4, 'Arusha', -3.386, 36.683);
insert into public.location_taxonomy (location_id, classification_id) values (1, 21), (2, 22), (4, 21);
insert into public.activity_taxonomy (activity_id, classification_id) values (1, 11), (2, 12), (3, 11), (5, 11), (1, 52);
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
