"""The functional core: pure decisions (model, periods, folder names, globs, rules and holds,
the plan, crontab parsing). No I/O, no clock, no import from the rest of the package: `now` and
the indexed facts are parameters, so plan, explain, report and apply agree by construction."""
