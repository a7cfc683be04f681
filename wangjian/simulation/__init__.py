"""A simulated campaign for `wangjian demo` and the end-to-end tests: generated leads arriving over
the weeks, members answering with realistic (and sometimes no) delays, reports and packages."""
