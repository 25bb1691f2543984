"""The records every layer passes: what a trial is (TrialSpec), how it is measured (MeasureSettings), what it
yields (TrialResult and its statistics, LoadGen's verdict, accuracy), as versioned JSON. Imports only models/."""
