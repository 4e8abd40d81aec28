// Package logs keeps a container's stdout and stderr in files that use the
// format of Docker's json-file logging driver, so that what `docker logs`
// users know (and tools that read /var/lib/docker/containers/*/*-json.log)
// also works for berth.
//
// # Format
//
// Each record is one JSON object on a line of its own:
//
//	{"log":"text\n","stream":"stdout","time":"2026-11-22T18:41:22.123456789Z"}
//
// "log" holds what the container wrote, "stream" is "stdout" or "stderr" and
// "time" is when berth read the text, in RFC 3339 with nanoseconds, UTC. The
// string is escaped the way Docker escapes it: '<', '>' and '&' as \u00XX,
// bytes that are not UTF-8 as U+FFFD.
//
// A line longer than 16 KiB is stored as several records of at most 16 KiB
// each. Like Docker, json-file has no field that marks these chunks: every
// chunk but the last lacks the final "\n", all of them carry the time of the
// first, and the chunks of stdout and stderr may interleave. [Read] joins the
// chunks of each stream back into one line; Docker's own reader returns them
// one by one, which prints the same bytes. Output that ends without a newline
// is stored without "\n" too.
//
// # Rotation
//
// The current file is <dir>/<name>.log. When a record would make it larger
// than [Options.MaxSize], it is renamed to <name>.log.1 (after <name>.log.1
// became .2, and so on; the file that would become .<MaxFiles> is deleted) and
// a new <name>.log is started. With MaxFiles 1 the file is replaced by an empty
// one instead, so only <name>.log exists, as with Docker's max-file=1.
// A reader follows the files across rotations by their identity, not their
// names, so that it neither repeats nor skips a line unless the file holding
// that line was deleted before the reader got to it.
package logs
