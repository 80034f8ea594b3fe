// Package bench is `dml bench`: it starts a dml server as a child process
// (the running executable, or another dml binary to compare releases) and
// measures what pipelines and agents feel — large pushes and pulls over
// REST and /v2/, chunked OCI uploads, small pushes with many clients,
// admission end to end, concurrent streams, evidence verification and the
// audit log — each against a baseline measured in the same run, the two
// alternated (dml, baseline, dml, baseline, …) so that a noisy machine
// slows both alike. It reports median and minimum of each, throughput and
// the server's peak resident memory (VmHWM) per scenario.
//
// The harness only drives servers over loopback and reads /proc; it
// changes nothing in the server it measures.
package bench
