-- Compliance (Order 959 as restated by Order 353 of 18.05.2026): the documents the licensor asks for,
-- the personnel eligibility rests on, each check run's results, and the backups that prove the
-- server's data can be restored. Nothing here is deleted by the application: a document that is
-- replaced is withdrawn, so an auditor can see what was registered when.

CREATE TABLE compliance_personnel (
    id            bigserial PRIMARY KEY,
    full_name     text NOT NULL,
    iin           text NOT NULL DEFAULT '',         -- individual identification number (12 digits) or ''
    position      text NOT NULL CHECK (position IN ('head', 'guard')),  -- chapter 1 or chapter 2
    job_title     text NOT NULL DEFAULT '',
    citizenship   text NOT NULL DEFAULT 'KZ',       -- ISO 3166 alpha-2, from the identity card
    birth_date    date NOT NULL,
    hired_on      date,
    dismissed_on  date,
    -- chapter 1 row 2: higher legal education, or three years in command/managerial positions
    qualification text NOT NULL DEFAULT ''
                  CHECK (qualification IN ('', 'legal_higher_education', 'command_experience')),
    staff_id      bigint UNIQUE,                    -- dispatch's staff member, when dispatch has one
    note          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE compliance_documents (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL,                    -- see compliance.document.KINDS
    number        text NOT NULL DEFAULT '',
    title         text NOT NULL DEFAULT '',
    issuer        text NOT NULL DEFAULT '',
    holder        text NOT NULL DEFAULT '',
    holder_bin    text NOT NULL DEFAULT '',         -- business identification number of the holder
    issued_on     date,
    valid_until   date,                             -- NULL: open-ended (e.g. a licence)
    registry_ref  text NOT NULL DEFAULT '',         -- the number in the state digital system it comes from
    detail        jsonb NOT NULL DEFAULT '{}',      -- kind-specific facts (address, inventory number, ...)
    person_id     bigint REFERENCES compliance_personnel(id) ON DELETE RESTRICT,
    group_id      bigint REFERENCES response_groups(id) ON DELETE SET NULL,
    vehicle_id    bigint REFERENCES vehicles(id) ON DELETE SET NULL,
    file_sha256   text NOT NULL CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    file_type     text NOT NULL CHECK (file_type IN ('pdf', 'jpeg', 'png')),
    file_size     bigint NOT NULL,
    file_name     text NOT NULL DEFAULT '',         -- as uploaded; shown only, never used to store or serve
    registered_by text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    review_status text NOT NULL DEFAULT 'pending' CHECK (review_status IN ('pending', 'accepted', 'rejected')),
    reviewed_by   text,
    reviewed_at   timestamptz,
    review_note   text NOT NULL DEFAULT '',
    withdrawn_at  timestamptz,
    withdrawn_by  text
);
CREATE INDEX compliance_documents_kind ON compliance_documents (kind) WHERE withdrawn_at IS NULL;
CREATE INDEX compliance_documents_person ON compliance_documents (person_id);

-- Results the order says the licensor obtains from state digital systems (psychiatric and narcological
-- registers, criminal records, offences, dismissals): Kuzet cannot query them, it keeps each result
-- with the date it was obtained and computes the one- and three-year windows from the event date.
CREATE TABLE compliance_screenings (
    id            bigserial PRIMARY KEY,
    person_id     bigint NOT NULL REFERENCES compliance_personnel(id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('psychiatric', 'narcology', 'criminal_record', 'liability_release',
                                                'misdemeanour', 'admin_offence', 'negative_dismissal',
                                                'labour_termination')),
    result        text NOT NULL CHECK (result IN ('clear', 'hit')),
    obtained_on   date NOT NULL,
    event_date    date,                             -- for a hit: the decision / dismissal date
    blocks_until  date,                             -- for a hit whose end Kuzet cannot compute (liability release)
    article       text NOT NULL DEFAULT '',         -- for an administrative offence: the CoAO article
    source        text NOT NULL DEFAULT '',
    reference     text NOT NULL DEFAULT '',
    document_id   bigint REFERENCES compliance_documents(id),
    recorded_by   text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX compliance_screenings_person ON compliance_screenings (person_id, kind, obtained_on DESC);

-- Every run of the checks, with its results, so the auditor sees the history.
CREATE TABLE compliance_check_runs (
    id            bigserial PRIMARY KEY,
    run_at        timestamptz NOT NULL DEFAULT now(),
    run_by        text NOT NULL,
    period_from   date NOT NULL,
    period_to     date NOT NULL,
    overall       text NOT NULL,
    results       jsonb NOT NULL
);
CREATE TABLE compliance_check_results (
    run_id        bigint NOT NULL REFERENCES compliance_check_runs(id) ON DELETE CASCADE,
    row_id        text NOT NULL,
    status        text NOT NULL CHECK (status IN ('met', 'warning', 'not-met', 'insufficient-evidence')),
    PRIMARY KEY (run_id, row_id)
);
CREATE INDEX compliance_check_results_row ON compliance_check_results (row_id, run_id DESC);

CREATE TABLE compliance_backups (
    id            bigserial PRIMARY KEY,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    file          text NOT NULL,
    size          bigint NOT NULL,
    sha256        text NOT NULL,
    verified      boolean NOT NULL DEFAULT false,   -- restored into a scratch database, audit chain intact
    verified_at   timestamptz,
    audit_entries bigint,
    detail        jsonb NOT NULL DEFAULT '{}',
    made_by       text NOT NULL
);
CREATE INDEX compliance_backups_time ON compliance_backups (finished_at DESC);

-- History the runtime may add to but never change (see console 0010): each check run, each backup.
SELECT kuzet_append_only('compliance_check_runs');
SELECT kuzet_append_only('compliance_check_results');
SELECT kuzet_append_only('compliance_backups');
