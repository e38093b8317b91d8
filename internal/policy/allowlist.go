package policy

// CheckAllowlistEntry checks an allowlist entry made outside a policy
// document (the system allowlist, a project allowlist edit) as policy
// parsing checks one: the advisory id's syntax and the repository glob.
// The error names the bad field.
func CheckAllowlistEntry(e *AllowlistEntry) error {
	_, err := compileEntry(e, "")
	return err
}
