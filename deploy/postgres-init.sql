-- Second database on the same server: the observatory's warehouse (role omh, password set by the operator).
CREATE ROLE omh LOGIN;
CREATE DATABASE omh OWNER omh;
