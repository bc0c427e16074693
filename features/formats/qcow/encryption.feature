@format:qcow @op:create
Feature: qcow AES encryption is refused here
  The manual keeps qcow's AES-CBC encryption (encryption=on, or encrypt.format=aes with
  encrypt.key-secret naming a secret object) only for data liberation. Neither the
  suite's adapters nor the reference pass secrets yet (the encryption issue adds them),
  so what is checked here is that every way of asking for it without a usable secret is
  refused with an error naming the encryption option, and that no other format is
  accepted.

  @spec:qcow.encryption
  Scenario: encryption=on without a secret is refused
    When a 64 MiB qcow image is created with "encryption=on"
    Then creation fails naming "encrypt"

  @spec:qcow.encrypt.format
  Scenario Outline: encrypt.format=<value> without a secret is refused
    When a 64 MiB qcow image is created with "encrypt.format=<value>"
    Then creation fails naming "encrypt"

    Examples:
      | value |
      | aes   |
      | luks  |

  @spec:qcow.encrypt.key-secret
  Scenario: encrypt.key-secret alone does not encrypt and is refused
    When a 64 MiB qcow image is created with "encrypt.key-secret=sec0"
    Then creation fails naming "encrypt"
