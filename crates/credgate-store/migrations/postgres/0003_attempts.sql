-- Failure counters for guessing limits: one fixed window per key (user or client address).
CREATE TABLE attempt_counters (
    key          TEXT    PRIMARY KEY,
    count        BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
