@format:luks @op:info
Feature: what the info of a LUKS image tells of its header
  The options of a luks image live in its LUKS1 header: the cipher and its key length, the
  cipher mode, the IV generator (and the hash keying essiv), the hash of the key derivation,
  the offset of the encrypted payload and the key slots. qemu-img info shows them under
  format-specific. The images here are where a scenario starts, not what it is about
  (create.feature is about creating), so an implementation that reads LUKS headers but does
  not create them, such as cryptsetup's luksDump, is handed the image the oracle makes.

  Background:
    Given a secret "sec0" holding the passphrase "correct horse"

  @spec:luks @spec:luks.cipher-alg @spec:luks.cipher-mode @spec:luks.ivgen-alg @spec:luks.hash-alg @spec:luks.size
  Scenario: the header of a luks image made without tuning is aes-256, xts, plain64 and sha256
    Given a 1 MiB luks image created with "key-secret=sec0,iter-time=10"
    Then the image info reports a virtual size of 1 MiB
    And the image info reports "encrypted" true
    And the image info reports format-specific "cipher-alg" "aes-256"
    And the image info reports format-specific "cipher-mode" "xts"
    And the image info reports format-specific "ivgen-alg" "plain64"
    And the image info reports format-specific "hash-alg" "sha256"
    And the image info reports format-specific "payload-offset" 2068480
    And key slot 0 of the image is active with at least 1000 iterations
    And the image info does not show the passphrase "correct horse"
    And the oracle reports the same info

  @spec:luks.cipher-alg @spec:luks.cipher-mode @spec:luks.ivgen-alg @spec:luks.ivgen-hash-alg @spec:luks.hash-alg @spec:luks.size
  Scenario Outline: the header names <alg> in <mode> mode with <ivgen> IVs and <hash>
    Given a 2 MiB luks image created with "key-secret=sec0,iter-time=10,cipher-alg=<alg>,cipher-mode=<mode>,ivgen-alg=<ivgen><extra>,hash-alg=<hash>"
    Then the image info reports a virtual size of 2 MiB
    And the image info reports format-specific "cipher-alg" "<alg>"
    And the image info reports format-specific "cipher-mode" "<mode>"
    And the image info reports format-specific "ivgen-alg" "<ivgen>"
    And the image info reports format-specific "hash-alg" "<hash>"
    And the oracle reports the same info

    Examples:
      | alg         | mode | ivgen   | extra                  | hash   |
      | aes-128     | xts  | plain64 |                        | sha1   |
      | aes-256     | cbc  | essiv   | ,ivgen-hash-alg=sha256 | sha512 |
      | aes-256     | ctr  | plain64 |                        | sha256 |
      | serpent-256 | xts  | plain64 |                        | sha256 |
      | twofish-128 | cbc  | plain64 |                        | sha1   |

  @spec:luks.ivgen-hash-alg
  Scenario: essiv keyed by sha256 names its hash
    Given a 1 MiB luks image created with "key-secret=sec0,iter-time=10,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256"
    Then the image info reports format-specific "ivgen-hash-alg" "sha256"
    And the oracle reports the same info
