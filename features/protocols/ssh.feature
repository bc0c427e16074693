@protocol:ssh @spec:ssh
Feature: SSH: images on a remote host, reached over SFTP
  The manual's ssh section: ssh://[USER@]SERVER[:PORT]/PATH[?host_key_check=...] (or the
  driver's options) names an image on a host running sshd with the SFTP subsystem. QEMU
  authenticates only with the identities of the user's ssh-agent; host_key_check is yes
  (known_hosts, the default), no, or a md5:/sha1: fingerprint of the host key (7.2 also takes
  sha256:). A server without fsync support gets a warning, since flushes cannot be obeyed.
  The peer is a private sshd on 127.0.0.1 with its own host key, authorized_keys and agent.
  What one implementation writes over ssh, the other reads over ssh.

  @spec:ssh.uri @spec:ssh.agent-auth @spec:ssh.port
  Scenario Outline: a <format> image written over ssh by the <writer> is read over ssh by the <reader>
    Given a 4 MiB <format> image
    And 64 KiB of pattern 0x5a written at offset 1 MiB
    And a private sshd on loopback
    When the <writer> writes 128 KiB of pattern 0x11 at offset 3 MiB over ssh by "ssh://127.0.0.1:{port}{path}?host_key_check=no"
    Then the <reader> reads over ssh by "ssh://127.0.0.1:{port}{path}?host_key_check=no":
      | offset | length | pattern |
      | 1 MiB  | 64 KiB  | 0x5a    |
      | 3 MiB  | 128 KiB | 0x11    |
    And the 128 KiB at offset 3 MiB reads back as pattern 0x11

    Examples:
      | format | writer         | reader         |
      | raw    | implementation | oracle         |
      | raw    | oracle         | implementation |
      | qcow2  | implementation | oracle         |
      | qcow2  | oracle         | implementation |

  @spec:ssh.uri
  Scenario Outline: a <format> image created over ssh by the implementation is one the oracle opens
    Given a private sshd on loopback
    When the implementation creates a 3 MiB <format> image over ssh by "ssh://127.0.0.1:{port}{path}?host_key_check=no"
    Then the oracle finds there a <format> image of 3 MiB

    Examples:
      | format |
      | raw    |
      | qcow2  |

  @spec:ssh.user @spec:ssh.options
  Scenario Outline: the <how> names the same remote image
    Given a 1 MiB raw file with 4 KiB of pattern 0x6b at offset 64 KiB
    And a private sshd on loopback
    Then the implementation reads 4 KiB of pattern 0x6b at offset 64 KiB over ssh by <form>

    Examples:
      | how                            | form |
      | URI with the user              | "ssh://{user}@127.0.0.1:{port}{path}?host_key_check=no" |
      | json: with -blockdev's options | 'json:{"driver":"raw","file":{"driver":"ssh","server":{"host":"127.0.0.1","port":"{port}"},"path":"{path}","host-key-check":{"mode":"none"}}}' |
      | json: with the manual's names  | 'json:{"driver":"raw","file":{"driver":"ssh","host":"127.0.0.1","port":"{port}","path":"{path}","host_key_check":"no"}}' |
      | dotted option list             | "driver=raw,file.driver=ssh,file.host=127.0.0.1,file.port={port},file.path={path},file.host_key_check=no" |

  @spec:ssh.host_key_check
  Scenario Outline: host_key_check=<check> is accepted when it matches the server's key
    Given a 1 MiB raw file with 4 KiB of pattern 0x01 at offset 0
    And a private sshd on loopback
    When the implementation opens the image over ssh by "ssh://127.0.0.1:{port}{path}?host_key_check=<check>"
    Then the ssh open succeeds

    # (host_key_check=no is what every other scenario uses)
    Examples:
      | check           |
      | md5:{md5:}      |
      | sha1:{sha1}     |
      | sha256:{SHA256} |

  @spec:ssh.host_key_check
  Scenario Outline: host_key_check=<check> refuses a server whose key it does not match
    Given a 1 MiB raw file with 4 KiB of pattern 0x01 at offset 0
    And a private sshd on loopback
    When the implementation opens the image over ssh by "ssh://127.0.0.1:{port}{path}?host_key_check=<check>"
    Then the ssh open fails with a message containing "does not match host_key_check"

    Examples:
      | check                 |
      | md5:{wrong-md5}       |
      | sha1:{wrong-sha1}     |
      | sha256:{wrong-sha256} |

  @spec:ssh.host_key_check
  Scenario: host_key_check=yes accepts a server whose key is in known_hosts
    Given a 1 MiB raw file with 4 KiB of pattern 0x01 at offset 0
    And a private sshd on loopback
    And the server's host key is in known_hosts
    When the implementation opens the image over ssh by "ssh://127.0.0.1:{port}{path}?host_key_check=yes"
    Then the ssh open succeeds

  @spec:ssh.host_key_check
  Scenario: without host_key_check, known_hosts is checked and a server it does not hold is refused
    Given a 1 MiB raw file with 4 KiB of pattern 0x01 at offset 0
    And a private sshd on loopback
    When the implementation opens the image over ssh by "ssh://127.0.0.1:{port}{path}"
    Then the ssh open fails with a message containing "no host key was found in known_hosts"

  @spec:ssh.host_key_check
  Scenario: host_key_check=yes refuses a server whose key differs from the one in known_hosts
    Given a 1 MiB raw file with 4 KiB of pattern 0x01 at offset 0
    And a private sshd on loopback
    And another host key is in known_hosts for the server
    When the implementation opens the image over ssh by "ssh://127.0.0.1:{port}{path}?host_key_check=yes"
    Then the ssh open fails with a message containing "does not match the one in known_hosts"

  @spec:ssh.fsync
  Scenario Outline: a server <which> fsync <result> when the implementation flushes
    Given a 1 MiB raw file with 4 KiB of pattern 0x01 at offset 0
    And a private sshd on loopback
    When the implementation writes 4 KiB of pattern 0x29 at offset 0 over ssh by "ssh://127.0.0.1:{<port>}{path}?host_key_check=no"
    Then the implementation <outcome>
    And the raw file holds 4 KiB of pattern 0x29 at offset 0

    Examples:
      | which   | result                       | port         | outcome                                                              |
      | without | gets the manual's warning    | nofsync-port | warned "ssh server 127.0.0.1:{nofsync-port} does not support fsync" |
      | with    | is flushed without a warning | port         | printed no warning                                                   |
