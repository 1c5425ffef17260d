"""The core every package leans on: settings, database, models, ticket lifecycle, queries, links, mail
transport, the delivery inbox and migrations. It imports no package above it (import-linter checks)."""
