@format:luks @op:create
Feature: creating LUKS images
  A luks image is a LUKS1 container, as dm-crypt and cryptsetup use it: the header, key
  slots holding the master key split by the anti-forensic splitter and encrypted with a
  key derived from the passphrase (PBKDF2), then the encrypted guest disk. The passphrase
  of key slot 0 is in the secret object named by key-secret. iter-time is kept tiny here:
  the scenarios are about the layout, not the strength of the key derivation. (qemu-img
  still spends a second or more per LUKS creation measuring PBKDF2 speed, so creations
  are few and each scenario checks much.)

  Background:
    Given a secret "sec0" holding the passphrase "correct horse"

  @spec:luks @spec:luks.key-secret @spec:luks.cipher-alg @spec:luks.cipher-mode @spec:luks.ivgen-alg @spec:luks.hash-alg @spec:luks.size @spec:luks.iter-time @requires:cryptsetup
  Scenario: without tuning, a luks image is aes-256 in xts mode with plain64 IVs and sha256
    When a 1 MiB luks image is created with "key-secret=sec0,iter-time=1"
    Then creation succeeds
    And the image info reports a virtual size of 1 MiB
    And the image info reports "encrypted" true
    And the image info reports format-specific "cipher-alg" "aes-256"
    And the image info reports format-specific "cipher-mode" "xts"
    And the image info reports format-specific "ivgen-alg" "plain64"
    And the image info reports format-specific "hash-alg" "sha256"
    And the image info reports format-specific "payload-offset" 2068480
    And key slot 0 of the image is active with at least 1000 iterations
    And the oracle reports the same info
    And cryptsetup accepts the LUKS header
    And cryptsetup unlocks a key slot with the passphrase "correct horse"
    And cryptsetup unlocks no key slot with the passphrase "wrong horse"

  @spec:luks.cipher-alg @spec:luks.cipher-mode @spec:luks.ivgen-alg @spec:luks.ivgen-hash-alg @spec:luks.hash-alg @op:write @op:read @requires:cryptsetup
  Scenario Outline: <alg> in <mode> mode with <ivgen> IVs and <hash> encrypts what the oracle and cryptsetup decrypt
    When a 1 MiB luks image is created with "key-secret=sec0,iter-time=10,cipher-alg=<alg>,cipher-mode=<mode>,ivgen-alg=<ivgen><extra>,hash-alg=<hash>"
    Then creation succeeds
    And the image info reports format-specific "cipher-alg" "<alg>"
    And the image info reports format-specific "cipher-mode" "<mode>"
    And the image info reports format-specific "ivgen-alg" "<ivgen>"
    And the image info reports format-specific "hash-alg" "<hash>"
    When 5000 bytes of pattern 0x5c is written at offset 1000 bytes
    Then the 5000 bytes at offset 1000 bytes read back as pattern 0x5c
    And the oracle reads the same guest bytes
    And cryptsetup unlocks a key slot with the passphrase "correct horse"

    Examples:
      | alg     | mode | ivgen   | extra                  | hash   |
      | aes-128 | xts  | plain64 |                        | sha1   |
      | aes-256 | cbc  | essiv   | ,ivgen-hash-alg=sha256 | sha512 |
      | aes-256 | ctr  | plain   |                        | sha256 |

  # cryptsetup open --test-passphrase decrypts key slots through the kernel's crypto API; on
  # this machine it has no aes-192-xts, serpent, twofish or cast5 there and falls back to a
  # device-mapper device it cannot create ("Cannot initialize device-mapper"), so these rows
  # check against the oracle only (the reference's unit tests read and write them with qemu-io).
  @spec:luks.cipher-alg @spec:luks.cipher-mode @spec:luks.ivgen-alg @spec:luks.ivgen-hash-alg @spec:luks.hash-alg @op:write @op:read
  Scenario Outline: <alg> in <mode> mode with <ivgen> IVs and <hash> encrypts what the oracle decrypts
    When a 1 MiB luks image is created with "key-secret=sec0,iter-time=10,cipher-alg=<alg>,cipher-mode=<mode>,ivgen-alg=<ivgen><extra>,hash-alg=<hash>"
    Then creation succeeds
    And the image info reports format-specific "cipher-alg" "<alg>"
    And the image info reports format-specific "cipher-mode" "<mode>"
    And the image info reports format-specific "ivgen-alg" "<ivgen>"
    And the image info reports format-specific "hash-alg" "<hash>"
    When 5000 bytes of pattern 0x5c is written at offset 1000 bytes
    Then the 5000 bytes at offset 1000 bytes read back as pattern 0x5c
    And the oracle reads the same guest bytes

    Examples:
      | alg         | mode | ivgen   | extra                  | hash   |
      | aes-192     | xts  | plain64 |                        | sha256 |
      | serpent-256 | xts  | plain64 |                        | sha256 |
      | serpent-128 | cbc  | essiv   | ,ivgen-hash-alg=sha256 | sha256 |
      | serpent-256 | ctr  | plain64 |                        | sha1   |
      | twofish-128 | xts  | plain64 |                        | sha256 |
      | twofish-128 | cbc  | plain64 |                        | sha256 |
      | twofish-256 | cbc  | essiv   | ,ivgen-hash-alg=sha256 | sha256 |
      | cast5-128   | cbc  | plain64 |                        | sha256 |
      | cast5-128   | ctr  | plain   |                        | sha1   |
      | cast5-128   | ecb  | plain64 |                        | sha256 |
      | cast5-128   | cbc  | essiv   | ,ivgen-hash-alg=md5    | sha256 |

  # cast5-128 has 8-byte blocks and one key size (16 bytes); qemu 7.2 refuses it in xts mode
  # and with an essiv hash whose digest is not 16 bytes (every hash but md5; sha256 is the default)
  @spec:luks.cipher-alg @spec:luks.cipher-mode @spec:luks.ivgen-alg @spec:luks.ivgen-hash-alg
  Scenario Outline: cast5-128 with <options> is refused: <reason>
    When a 1 MiB luks image is created with "key-secret=sec0,iter-time=10,cipher-alg=cast5-128,<options>"
    Then creation fails naming "<reason>"
    And no image file is left behind

    Examples:
      | options                                             | reason                                    |
      | cipher-mode=xts                                     | Unsupported cipher mode xts               |
      | cipher-mode=cbc,ivgen-alg=essiv                     | Cipher cast5-128 not supported with essiv |
      | cipher-mode=ctr,ivgen-alg=essiv,ivgen-hash-alg=sha1 | Cipher cast5-128 not supported with essiv |

  @spec:luks.cipher-alg @op:write @op:read
  Scenario: aes-192, a documented key length, encrypts and decrypts
    When a 1 MiB luks image is created with "key-secret=sec0,iter-time=10,cipher-alg=aes-192,cipher-mode=cbc,ivgen-alg=plain"
    Then creation succeeds
    And the image info reports format-specific "cipher-alg" "aes-192"
    When 5000 bytes of pattern 0x5c is written at offset 1000 bytes
    Then the 5000 bytes at offset 1000 bytes read back as pattern 0x5c

  @spec:luks.key-secret
  Scenario: a luks image needs a key secret
    When a 1 MiB luks image is created with "iter-time=10"
    Then creation fails naming "key-secret"
    And no image file is left behind

  @spec:luks.key-secret
  Scenario: the key secret must be a secret object that exists
    When a 1 MiB luks image is created with "key-secret=nosuch,iter-time=10"
    Then creation fails naming "nosuch"
    And no image file is left behind

  @spec:luks.cipher-alg @spec:luks.cipher-mode @spec:luks.ivgen-alg @spec:luks.hash-alg
  Scenario Outline: an unknown <option> is refused
    When a 1 MiB luks image is created with "key-secret=sec0,iter-time=10,<option>=foo"
    Then creation fails naming "<option>"
    And no image file is left behind

    Examples:
      | option      |
      | cipher-alg  |
      | cipher-mode |
      | ivgen-alg   |
      | hash-alg    |

  @spec:luks.ivgen-hash-alg
  Scenario: essiv cannot be keyed by a hash whose digest is no AES key size
    When a 1 MiB luks image is created with "key-secret=sec0,iter-time=10,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha1"
    Then creation fails naming "ivgen-hash-alg" or "key size"
    And no image file is left behind

  # serpent and twofish take 16, 24 and 32-byte keys like aes, so essiv refuses the same hashes
  # with them; qemu 7.2 says "No Serpent cipher with key size 20 available"
  @spec:luks.ivgen-hash-alg @spec:luks.cipher-alg
  Scenario Outline: essiv with <alg> cannot be keyed by <hash>, whose digest is no key size of it
    When a 1 MiB luks image is created with "key-secret=sec0,iter-time=10,cipher-alg=<alg>,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=<hash>"
    Then creation fails naming "key size"
    And no image file is left behind

    Examples:
      | alg         | hash   |
      | serpent-128 | sha1   |
      | serpent-256 | sha512 |
      | twofish-192 | sha1   |
      | twofish-256 | sha384 |

  @spec:luks.preallocation @spec:luks.nocow @spec:luks.extent_size_hint
  Scenario: preallocation=full writes the payload out (nocow and extent_size_hint, file hints, are taken along)
    When a 2 MiB luks image is created with "key-secret=sec0,iter-time=10,preallocation=full,nocow=on,extent_size_hint=0"
    Then creation succeeds
    And the image file occupies at least 3 MiB on the host
    And the image info reports a virtual size of 2 MiB

  @spec:luks.extent_size_hint
  Scenario: an extent size hint of 4 GiB or more is refused
    When a 1 MiB luks image is created with "key-secret=sec0,iter-time=10,extent_size_hint=4G"
    Then creation fails naming "extent size hint" or "extent_size_hint"
    And no image file is left behind
