\echo Use "CREATE EXTENSION sharecount" to load this file. \quit
CREATE SCHEMA IF NOT EXISTS sharecount;
