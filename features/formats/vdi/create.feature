@format:vdi @op:create
Feature: creating VirtualBox (vdi) images
  A vdi image is a header, a block map with one entry per 1 MiB block of the disk,
  and the blocks. static=on gives every block its place in the file at creation.

  @spec:vdi
  Scenario Outline: a <size> vdi image has that virtual size
    When a <size> vdi image is created
    Then creation succeeds
    And the image info reports a virtual size of <size>
    And the image info reports "cluster-size" 1048576
    And the check reports no corruption
    And the oracle reports the same info
    And the oracle finds the image consistent

    Examples:
      | size   |
      | 0      |
      | 1 MiB  |
      | 5 MiB  |
      | 1 GiB  |

  @spec:vdi.static
  Scenario Outline: static=<value> is accepted
    When a 16 MiB vdi image is created with "static=<value>"
    Then creation succeeds
    And the whole disk reads back as zeroes
    And the oracle reports the same info
    And the oracle reports the same map
    And the oracle finds the image consistent

    Examples:
      | value |
      | on    |
      | off   |
      | yes   |
      | no    |

  @spec:vdi.static
  Scenario: a static image holds the whole disk in its file
    When a 16 MiB vdi image is created with "static=on"
    Then creation succeeds
    And the image file is at least 16 MiB long

  @spec:vdi.static
  Scenario Outline: static=<value> is refused
    When a 16 MiB vdi image is created with "static=<value>"
    Then creation fails naming "static"
    And no image file is left behind

    Examples:
      | value |
      | abc   |
      | 2     |

  @spec:vdi.preallocation
  Scenario Outline: preallocation=<value> is accepted and leaves a sparse image
    When a 16 MiB vdi image is created with "preallocation=<value>"
    Then creation succeeds
    And the whole disk reads back as zeroes
    And the oracle finds the image consistent

    Examples:
      | value  |
      | off    |
      | falloc |
      | full   |

  @spec:vdi
  Scenario Outline: an unknown option <option> is refused
    When a 16 MiB vdi image is created with "<option>"
    Then creation fails naming "<name>"

    Examples:
      | option             | name          |
      | cluster_size=64k   | cluster_size  |
      | preallocation=meta | meta          |
