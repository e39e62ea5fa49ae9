!> @file gyre_sbc.F90
!> @brief Surface forcing: double-gyre zonal wind stress and the meridional temperature relaxation profile.
!>
!> taux(y) = -rn_tau0 * cos(2 pi y / Ly): easterlies at both walls, westerlies mid-basin, i.e. a subtropical
!> (anticyclonic) gyre in the south and a subpolar (cyclonic) gyre in the north. The temperature is relaxed
!> toward tstar(y) = rn_tsouth + (rn_tnorth - rn_tsouth) * y / Ly with the time scale rn_trelax (days).
module gyre_sbc
   use gyre_par
   use gyre_mpp, only: nj, njmpp
   implicit none
   private

   public :: sbc_init

   real(wp), allocatable, public :: utau(:)    !< zonal wind stress on the u points of local row j (N m-2)
   real(wp), allocatable, public :: tstar(:)   !< relaxation temperature on local row j (degC)
   real(wp), public :: rtrelax_inv = 0._wp     !< 1 / relaxation time (s-1), 0 without relaxation

contains

   !> Compute the forcing profiles for the rows of this tile (halos included).
   subroutine sbc_init()
      integer :: jj
      real(wp) :: zy, zly
      zly = nn_ny * rn_dy
      allocate(utau(1-nn_hls:nj+nn_hls), tstar(1-nn_hls:nj+nn_hls))
      do jj = 1 - nn_hls, nj + nn_hls
         zy = (real(jj + njmpp, wp) - 0.5_wp) * rn_dy
         utau(jj)  = -rn_tau0 * cos(2._wp * rpi * zy / zly)
         tstar(jj) = rn_tsouth + (rn_tnorth - rn_tsouth) * zy / zly
      end do
      rtrelax_inv = 0._wp
      if (rn_trelax > 0._wp) rtrelax_inv = 1._wp / (rn_trelax * rday)
   end subroutine sbc_init

end module gyre_sbc
