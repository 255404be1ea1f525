// Package wal is the broker's write-ahead log: one append-only, group-
// committed log shared by every partition a broker leads. A produce with
// acks != 0 is answered only after its batch is durable here; the uploader
// later moves WAL contents into segment objects and trims the WAL.
package wal
