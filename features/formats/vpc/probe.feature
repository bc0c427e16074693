@format:vpc @op:info @spec:vpc.subformat
Feature: how a vpc image is recognised
  A dynamic VHD starts with a copy of its footer ("conectix") and is recognised by it. A
  fixed VHD has its footer only at the end of the file: opened as vpc it is found there,
  but probing looks only at the start of the file, so without a format it reads as raw
  (qemu-img 7.2 does the same).

  Scenario Outline: a <subformat> image is probed as <probed>
    Given a 1 MiB vpc image created with "subformat=<subformat>"
    When the image is probed
    Then it is probed as <probed>

    Examples:
      | subformat | probed |
      | dynamic   | vpc    |
      | fixed     | raw    |
