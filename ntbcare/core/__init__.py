"""The core every package leans on: settings, database, models, ticket lifecycle, queries, links, mail
transport and agency e-mails, Indonesian display formats, the delivery inbox and migrations. It imports no
package above it (import-linter checks)."""
