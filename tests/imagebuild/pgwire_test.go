package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// pgConn is the little of PostgreSQL's frontend/backend protocol (v3) the
// image test needs: password login (SCRAM-SHA-256, or cleartext) and simple
// queries whose results arrive as text. It lets the test talk to the server
// from the host the way an application would, with no driver module and no
// psql on the host.
type pgConn struct {
	c net.Conn
	r *bufio.Reader
}

// pgError is an ErrorResponse from the server.
type pgError struct {
	Severity, Code, Message string
}

func (e *pgError) Error() string {
	return fmt.Sprintf("postgres: %s %s: %s", e.Severity, e.Code, e.Message)
}

// pgConnect connects and logs in; the context bounds the whole login.
func pgConnect(ctx context.Context, addr, user, password, database string) (_ *pgConn, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := &pgConn{c: c, r: bufio.NewReader(c)}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return nil, err
		}
	}

	var startup bytes.Buffer
	startup.Write(binary.BigEndian.AppendUint32(nil, 3<<16)) // protocol 3.0
	for _, kv := range [][2]string{{"user", user}, {"database", database}} {
		startup.WriteString(kv[0] + "\x00" + kv[1] + "\x00")
	}
	startup.WriteByte(0)
	if err := conn.send(0, startup.Bytes()); err != nil {
		return nil, err
	}

	for {
		typ, body, err := conn.recv()
		if err != nil {
			return nil, err
		}
		switch typ {
		case 'R':
			if len(body) < 4 {
				return nil, errors.New("postgres: short authentication message")
			}
			switch code := binary.BigEndian.Uint32(body); code {
			case 0: // AuthenticationOk
			case 3: // AuthenticationCleartextPassword
				if err := conn.send('p', []byte(password+"\x00")); err != nil {
					return nil, err
				}
			case 10: // AuthenticationSASL
				mechs := strings.Split(strings.TrimRight(string(body[4:]), "\x00"), "\x00")
				if !strings.Contains(strings.Join(mechs, " "), "SCRAM-SHA-256") {
					return nil, fmt.Errorf("postgres: unsupported SASL mechanisms %q", mechs)
				}
				if err := conn.scram(password); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("postgres: unsupported authentication request %d", code)
			}
		case 'E':
			return nil, parsePgError(body)
		case 'Z': // ReadyForQuery
			_ = c.SetDeadline(time.Time{})
			return conn, nil
		}
	}
}

// scram runs the SCRAM-SHA-256 exchange of RFC 5802 / RFC 7677, as
// PostgreSQL does it: the user name in the SCRAM messages is empty (the
// startup message named the user), and there is no channel binding.
func (c *pgConn) scram(password string) error {
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	nonce := base64.RawStdEncoding.EncodeToString(raw)
	clientFirstBare := "n=,r=" + nonce
	clientFirst := "n,," + clientFirstBare

	var initial bytes.Buffer
	initial.WriteString("SCRAM-SHA-256\x00")
	initial.Write(binary.BigEndian.AppendUint32(nil, uint32(len(clientFirst))))
	initial.WriteString(clientFirst)
	if err := c.send('p', initial.Bytes()); err != nil {
		return err
	}

	serverFirst, err := c.saslStep(11) // AuthenticationSASLContinue
	if err != nil {
		return err
	}
	attrs := scramAttrs(serverFirst)
	if !strings.HasPrefix(attrs["r"], nonce) {
		return errors.New("postgres: SCRAM server nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil {
		return fmt.Errorf("postgres: SCRAM salt: %w", err)
	}
	iter, err := strconv.Atoi(attrs["i"])
	if err != nil {
		return fmt.Errorf("postgres: SCRAM iterations: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	withoutProof := "c=biws,r=" + attrs["r"] // biws = base64("n,,")
	authMessage := clientFirstBare + "," + serverFirst + "," + withoutProof
	proof := hmacSHA256(storedKey[:], authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	final := withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
	if err := c.send('p', []byte(final)); err != nil {
		return err
	}

	serverFinal, err := c.saslStep(12) // AuthenticationSASLFinal
	if err != nil {
		return err
	}
	want := hmacSHA256(hmacSHA256(salted, "Server Key"), authMessage)
	got, err := base64.StdEncoding.DecodeString(scramAttrs(serverFinal)["v"])
	if err != nil || !hmac.Equal(got, want) {
		return errors.New("postgres: the server's SCRAM signature is wrong")
	}
	return nil
}

// saslStep reads the next authentication message, which must have the given
// code, and returns its SASL data.
func (c *pgConn) saslStep(code uint32) (string, error) {
	typ, body, err := c.recv()
	if err != nil {
		return "", err
	}
	if typ == 'E' {
		return "", parsePgError(body)
	}
	if typ != 'R' || len(body) < 4 || binary.BigEndian.Uint32(body) != code {
		return "", fmt.Errorf("postgres: expected SASL step %d, got message %q", code, typ)
	}
	return string(body[4:]), nil
}

func scramAttrs(msg string) map[string]string {
	attrs := map[string]string{}
	for _, kv := range strings.Split(msg, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			attrs[k] = v
		}
	}
	return attrs
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// query runs SQL with the simple query protocol and returns the rows of all
// its statements, as text (NULL as "").
func (c *pgConn) query(ctx context.Context, sql string) ([][]string, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := c.c.SetDeadline(dl); err != nil {
			return nil, err
		}
		defer c.c.SetDeadline(time.Time{})
	}
	if err := c.send('Q', []byte(sql+"\x00")); err != nil {
		return nil, err
	}
	var rows [][]string
	var qerr error
	for {
		typ, body, err := c.recv()
		if err != nil {
			return nil, err
		}
		switch typ {
		case 'D':
			row, err := parseDataRow(body)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		case 'E':
			qerr = parsePgError(body)
		case 'Z':
			return rows, qerr
		}
	}
}

func parseDataRow(body []byte) ([]string, error) {
	if len(body) < 2 {
		return nil, errors.New("postgres: short data row")
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	row := make([]string, 0, n)
	for range n {
		if len(body) < 4 {
			return nil, errors.New("postgres: short data row")
		}
		l := int32(binary.BigEndian.Uint32(body))
		body = body[4:]
		if l < 0 {
			row = append(row, "")
			continue
		}
		if int(l) > len(body) {
			return nil, errors.New("postgres: short data row")
		}
		row = append(row, string(body[:l]))
		body = body[l:]
	}
	return row, nil
}

func parsePgError(body []byte) error {
	e := &pgError{}
	for len(body) > 1 {
		field := body[0]
		val, rest, _ := bytes.Cut(body[1:], []byte{0})
		body = rest
		switch field {
		case 'S':
			e.Severity = string(val)
		case 'C':
			e.Code = string(val)
		case 'M':
			e.Message = string(val)
		}
	}
	return e
}

// send writes one message; type 0 is the startup message, which has none.
func (c *pgConn) send(typ byte, body []byte) error {
	var msg []byte
	if typ != 0 {
		msg = append(msg, typ)
	}
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(body)+4))
	msg = append(msg, body...)
	_, err := c.c.Write(msg)
	return err
}

func (c *pgConn) recv() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("postgres: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > 64<<20 {
		return 0, nil, fmt.Errorf("postgres: message %q of length %d", hdr[0], n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, nil, fmt.Errorf("postgres: %w", err)
	}
	return hdr[0], body, nil
}

func (c *pgConn) close() {
	_ = c.send('X', nil)
	c.c.Close()
}
