package main

import "github.com/nhsx/posture/checks/repo"

// useSecretKey installs the deployment's key for the hashes of secrets
// found in repositories: <db>.secret-key, 32 random bytes made on first use
// (mode 0600). Keep it with the database: a new key makes every stored
// hash stop matching the next run's.
func useSecretKey(db string) error {
	k, err := repo.LoadSecretKey(repo.SecretKeyPath(db))
	if err != nil {
		return err
	}
	return repo.SetSecretKey(k)
}
