@format:vmdk @op:info @op:read @requires:qemu-img @spec:vmdk
Feature: hostile vmdk images are refused without harm
  A sparse extent header, grain directory, grain table, grain marker or descriptor that cannot
  be right must be refused with an error naming it: no crash, no hang, no allocation beyond
  the file's size (the reference reads no grain directory that does not lie in the file, holds
  at most 64 grain tables and opens at most 4096 extents), no change to the file. A descriptor
  is untrusted: the reference opens extent files only inside the descriptor's directory.
  The base images are 8 MiB vmdk images (monolithicSparse, or streamOptimized) made by
  qemu-img with 64 KiB written at 64 KiB (at 0 in the streamOptimized one).

  Scenario Outline: an image whose <defect> is refused
    Given a vmdk image whose <defect>
    When the image is opened
    Then the vmdk open is refused naming the defect
    And the image file is unchanged

    Examples:
      | defect                                          |
      | grain directory lies past the end of the file   |
      | grain size is 2^22 sectors                      |
      | capacity is 2^42 sectors                        |
      | version is 4                                    |
      | grain table entries per table are 4096          |
      | first grain table lies past the end of the file |
      | compressed grain claims 2^30 bytes              |
      | createType is monolithicFoo                     |
      | extent is named by an absolute path             |
      | extent lies outside its directory               |
      | descriptor lists 10^6 extents                   |
      | parent is the image itself                      |

  @op:check
  Scenario: check stops at a grain that lies past the end of the file
    Given a vmdk image whose grain lies past the end of the file
    When the vmdk image is checked
    Then the check fails naming "points after EOF"
    And the image file is unchanged
