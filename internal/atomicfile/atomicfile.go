// Package atomicfile replaces files whole: a crash or an error leaves the
// old content or the new one, never a mix, and no half-written file under
// the final name.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with what write writes, with mode perm. The content
// goes to a temporary file beside path (named .<name>.*, removed on
// failure), is synced to disk, and renamed over path; the directory is
// synced too, so that the rename outlives a crash.
func Write(path string, perm os.FileMode, write func(io.Writer) error) error {
	return replace(path, perm, write, true)
}

// WriteBytesNoSync replaces path with b without waiting for the disk: a
// crash of the program leaves the old content or the new one, a crash of
// the host may leave the old one. For state that is rewritten often and
// rebuilt when lost (a container's health).
func WriteBytesNoSync(path string, perm os.FileMode, b []byte) error {
	return replace(path, perm, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}, false)
}

func replace(path string, perm os.FileMode, write func(io.Writer) error, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	err = write(tmp)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil && sync {
		err = SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// WriteBytes replaces path with b, as Write does.
func WriteBytes(path string, perm os.FileMode, b []byte) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(b))
		return err
	})
}

// SyncDir makes the entries of dir (a rename into it) outlive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
